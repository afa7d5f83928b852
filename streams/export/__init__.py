"""Exports out of InfluxDB: FHIR R4 for the patient record, OMOP CDM for research.

`fhir` is care-facing (the subject is the real patient, re-identified from the
registry, as the notifier does); `research` never carries an identifier, the
live pseudonym, a device id, a ward or a bed (docs/exports.md).
"""
