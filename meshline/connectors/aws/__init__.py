"""AWS connectors: ``aws.sqs`` (source and target) and ``aws.s3`` (notification source, object target).

Every connector here takes ``region`` and ``endpoint_url`` and finds credentials
the boto3 way (environment, shared config/profile, container or instance role,
``role_arn`` to assume) unless the config names them (``access_key_id``,
``secret_access_key``, ``session_token``: secret keys, never shown).
boto3 is imported only when a pipeline actually runs one of them.
"""
