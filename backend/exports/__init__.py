"""Department exports: per period and department an xlsx for people, a JSON bundle for machines
(credentials, inclusion proofs, checkpoint, issuer DID document, witness keys) and a PDF summary,
hashed together in a manifest whose SHA-256 is anchored on the chain (label ``export``)."""
