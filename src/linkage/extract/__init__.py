"""Agency-side extract handling: reading raw input, pseudonymising, manifests and verification."""
