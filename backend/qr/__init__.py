"""Personal QR tokens and printable QR cards."""
