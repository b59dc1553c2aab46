"""Distances on the ground for duplicate suggestions (~50 m, as FixMyStreet offers nearby reports).

Haversine on a spherical Earth (mean radius 6 371 008.8 m): at 50 m the error against WGS 84 is
centimetres. `box` gives a cheap latitude/longitude window for the database to narrow the
candidates before the exact distance is computed here.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
NEARBY_M = 50.0


def distance_m(lat1: float, long1: float, lat2: float, long2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlam = math.radians(long2 - long1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def box(lat: float, long: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min lat, max lat, min long, max long) containing every point within `radius_m`."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlong = math.degrees(radius_m / (EARTH_RADIUS_M * max(math.cos(math.radians(lat)), 1e-6)))
    return lat - dlat, lat + dlat, long - dlong, long + dlong


def valid(lat: float | None, long: float | None) -> bool:
    return lat is not None and long is not None and -90 <= lat <= 90 and -180 <= long <= 180
