"""The simulated warehouse floor."""
