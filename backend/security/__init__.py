"""Security building blocks: field encryption, blind indexes and masking of personal data."""
