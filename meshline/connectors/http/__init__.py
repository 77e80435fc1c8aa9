"""HTTP connectors: the ``http`` target (POST events), the ``http`` webhook source.

The ``http`` transformation (a serverless function) lives in
:mod:`meshline.transforms.http` and shares :mod:`meshline.connectors.http.client`.
"""
