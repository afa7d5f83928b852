"""OMOP CDM v5.4 standard concepts for what the research export writes.

Concept ids from the OHDSI standardized vocabularies (Athena): measurement
concepts are the standard LOINC concepts of our metrics, units the UCUM unit
concepts, gender the OMOP Gender domain. What has no standard concept in the
vocabulary we checked (ACVPU level, supplemental oxygen as our boolean, the
wearable as a device) is written with concept 0 and the source value, as the
CDM conventions say for unmapped data; the hospital's vocabulary team maps
them when loading.
"""

from __future__ import annotations

# metric -> (measurement_concept_id, LOINC source value, unit_concept_id, UCUM unit)
MEASUREMENT_CONCEPTS: dict[str, tuple[int, str, int, str]] = {
    "heart_rate": (3027018, "8867-4", 8541, "/min"),
    "respiratory_rate": (3024171, "9279-1", 8541, "/min"),
    "spo2": (40762499, "59408-5", 8554, "%"),
    "body_temperature": (3020891, "8310-5", 586323, "Cel"),
    "systolic_bp": (3004249, "8480-6", 8876, "mm[Hg]"),
    "diastolic_bp": (3012888, "8462-4", 8876, "mm[Hg]"),
    "mean_bp": (3027598, "8478-0", 8876, "mm[Hg]"),
}
GENDER_CONCEPTS = {"female": 8532, "male": 8507}  # other/unknown: 0
# Type concept "EHR" (32817): recorded in the hospital's systems.
TYPE_EHR = 32817
ACVPU_LETTERS = ("A", "C", "V", "P", "U")  # analytics.metrics.Consciousness order
