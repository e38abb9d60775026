"""Catalyst game panel (catalystctl/catalyst ``catalyst-backend`` @747660b5)."""
