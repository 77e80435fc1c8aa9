"""Importers: other systems' manifests → one Meshline integration file.

:mod:`meshline.importer.triggermesh` converts TriggerMesh and Knative Eventing
manifests (``meshline import triggermesh FILE…``).
"""
