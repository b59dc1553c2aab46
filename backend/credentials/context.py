"""The JSON-LD context of our own credential terms (W3C VC 2.0 §5.2 "Extensibility").

VC 2.0's base context no longer maps unknown terms to an ``@vocab`` fallback, so a credential
whose subject says ``period`` or ``method`` without a context defining them is, to a JSON-LD
processor, silently missing those claims. This context defines every term of an
``ElderlyLivenessCertification`` that the base context does not, is ``@protected`` like the
base context, and is served at a stable URL under PUBLIC_URL (``/credentials/contexts/v1``)
whose last path segment is its version: a changed meaning gets a new URL, never an edit.
"""

from __future__ import annotations

from typing import Any

CONTEXT_PATH = "/credentials/contexts/v1"
MEDIA_TYPE = "application/ld+json"
XSD = "http://www.w3.org/2001/XMLSchema#"


def context_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}{CONTEXT_PATH}"


def context_document(public_url: str) -> dict[str, Any]:
    """The context served at `context_url`; each term's IRI is the context URL + ``#term``."""
    base = context_url(public_url) + "#"
    return {
        "@context": {
            "@version": 1.1,
            "@protected": True,
            "ElderlyLivenessCertification": {"@id": base + "ElderlyLivenessCertification"},
            "period": {"@id": base + "period", "@type": XSD + "gYearMonth"},
            "programme": {"@id": base + "programme"},
            "method": {"@id": base + "method"},
            "certifiedAt": {"@id": base + "certifiedAt", "@type": XSD + "dateTime"},
            "assuranceLevel": {"@id": base + "assuranceLevel"},
        }
    }
