"""Verifiable credentials of a certification (DESIGN §6).

* ``multikey``    W3C Controlled Identifiers 1.0 §2.2.2 Multikey, multibase base58btc / base64url
* ``eddsa_jcs``   W3C vc-di-eddsa 1.0 §3.3 the ``eddsa-jcs-2022`` cryptosuite (RFC 8785 + Ed25519)
* ``status_list`` W3C Bitstring Status List 1.0 (revocation and suspension)
* ``sdjwt``       IETF SD-JWT (RFC 9901) and SD-JWT VC (``dc+sd-jwt``) for portals
* ``token_status`` IETF Token Status List: the ``status`` of the SD-JWT VCs
* ``context``     the JSON-LD context defining our credential terms
* ``did``         did:web documents of the community issuers
* ``verify``      offline verification of a credential and its evidence (no database, no settings)
* ``errors``      one exception type per failure kind
* ``models`` · ``keys`` · ``service`` · ``anchor`` · ``routes`` · ``schemas``  the backend side
* ``python -m backend.credentials``  issuer key operations (keygen, rotate, withdraw, did)

The pure modules (the first eight and ``errors``) import nothing from the backend's settings or
database, so ``scripts/verify`` runs with only a bundle and the keys.
"""
