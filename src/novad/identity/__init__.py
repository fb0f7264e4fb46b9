"""A small Keystone v3 for one node (or a cluster sharing one cluster key).

``schema`` owns the tables, ``passwords`` hashes them, ``tokens`` seals and
opens Fernet tokens, ``service`` is the :class:`IdentityService` every other
part calls, and ``routes`` is its HTTP face under ``/identity``.
"""
