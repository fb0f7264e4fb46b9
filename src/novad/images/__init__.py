"""A small Glance v2 for one node: image records, data files, the HTTP API.

* :mod:`~novad.images.schema` -- the ``images`` table (a store component);
* :mod:`~novad.images.model` -- the :class:`Image` record and its Glance view;
* :mod:`~novad.images.rules` -- which attributes may be set, JSON patch;
* :mod:`~novad.images.files` -- crash-safe, streaming data files;
* :mod:`~novad.images.service` -- :class:`ImageService`, for the API and
  for the compute service (snapshots, backups);
* :mod:`~novad.images.routes` -- the ``/image`` route table.
"""
