"""NextPanel hosting panel, several servers behind one API (saifulrony/nextpanel-bill @d511c847)."""
