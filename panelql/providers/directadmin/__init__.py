"""DirectAdmin web-hosting panel: accounts and DNS (its legacy ``CMD_API_*`` API)."""
