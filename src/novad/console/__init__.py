"""Consoles: the noVNC proxy every node serves, and its tokens.

    tokens.py   console_auth_tokens: random tokens stored as SHA-256 hashes, TTL, purge
    service.py  console URLs, connect-time token checks, revocation, session records
    proxy.py    the websockets server: noVNC's pages, the Origin check, sessions
    rfb.py      RFB 3.8 for the security proxy (and a minimal client for tests)
    relay.py    the VNC server's side of a session: handshake stream, zero-copy relay
    static.py   noVNC's files, from the pinned release scripts/setup unpacks
"""
