"""The web page served under /ui/: sign-in, audit review and people's decisions."""
