"""Helpers for the tests of course_lib.data: small files fabricated in the real formats, and a local HTTP
server with switchable misbehaviour (no network is ever used)."""
