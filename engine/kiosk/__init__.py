"""Wall screens: kiosk tokens and their API."""
