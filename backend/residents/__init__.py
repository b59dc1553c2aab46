"""Residents: communities, residents, helpers, consent and roster import."""
