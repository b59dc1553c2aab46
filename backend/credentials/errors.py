"""One exception type per failure kind of credential verification.

Every error names the verification ``check`` it belongs to (``issuer_key``, ``signature``,
``status``, ``inclusion``, ``checkpoint``, ``witness_quorum``, ``format``) and its message says
what was expected and what was computed.
"""

from __future__ import annotations


class CredentialError(ValueError):
    """Base class of every credential verification failure."""

    check = "format"


class MalformedCredential(CredentialError):
    """The document is not a credential of the shape this verifier understands."""

    check = "format"


class MalformedProof(CredentialError):
    """The proof is missing or lacks a required member."""

    check = "signature"


class UnsupportedCryptosuite(CredentialError):
    """The proof names a type or cryptosuite other than DataIntegrityProof / eddsa-jcs-2022."""

    check = "signature"


class ProofContextMismatch(CredentialError):
    """The proof's @context is not a prefix of the document's @context (vc-di-eddsa §3.3.2)."""

    check = "signature"


class SignatureMismatch(CredentialError):
    """The Ed25519 signature does not verify over the computed hash data."""

    check = "signature"


class IssuerKeyUnknown(CredentialError):
    """The verification method is not an assertion method of the issuer's DID document."""

    check = "issuer_key"


class MalformedMultikey(CredentialError):
    """A publicKeyMultibase / proofValue is not the multibase encoding expected."""

    check = "issuer_key"


class StatusListInvalid(CredentialError):
    """The status list credential is missing, unsigned, of another issuer or malformed."""

    check = "status"


class CredentialRevoked(CredentialError):
    """The revocation bit of the credential is set."""

    check = "status"


class CredentialSuspended(CredentialError):
    """The suspension bit of the credential is set."""

    check = "status"


class AnchorMissing(CredentialError):
    """No inclusion proof accompanies the credential."""

    check = "inclusion"


class AnchorMismatch(CredentialError):
    """The inclusion proof is for another leaf than SHA-256 of the canonical credential, or does not verify."""

    check = "inclusion"


class CheckpointInvalid(CredentialError):
    """The checkpoint's log signature does not verify under the trusted log key."""

    check = "checkpoint"


class WitnessQuorumFailed(CredentialError):
    """The checkpoint lacks a valid aggregate cosignature of a quorum of trusted witnesses."""

    check = "witness_quorum"


class SdJwtError(CredentialError):
    """An SD-JWT does not verify (signature, header, digest of a disclosure)."""

    check = "sd_jwt"
