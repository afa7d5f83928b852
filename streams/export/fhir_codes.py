"""Codes of the FHIR R4 export: the vital-signs profile's LOINC codes and UCUM units.

Source: HL7 FHIR R4 (4.0.1) "Vital Signs" profiles
(http://hl7.org/fhir/R4/observation-vitalsigns.html): each vital sign has its
own profile, a required LOINC code and a UCUM unit. Codes and units of our
metrics come from the metric table (analytics/metrics.py); this module only
adds what the profiles fix on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"
VITALSIGNS_PROFILE = PROFILE_BASE + "vitalsigns"
# Our own code systems (no standard code exists for these).
QUALITY_SYSTEM = "urn:vitalstream:fhir:reading-quality"
NEWS2_PARAMETER_SYSTEM = "urn:vitalstream:fhir:news2-parameter"
DEVICE_ID_SYSTEM = "urn:vitalstream:device-id"


@dataclass(frozen=True)
class VitalCode:
    profile: str  # the profile's StructureDefinition url
    loinc: str  # the code the profile requires
    display: str
    ucum: str
    extra_loinc: tuple[str, ...] = ()  # more specific codes sent beside it


# metric -> profile. SpO2: the profile requires 2708-6 and allows the more
# specific 59408-5 (by pulse oximetry) beside it. Mean arterial pressure has
# no profile of its own and uses the base vital-signs profile.
VITAL_CODES: dict[str, VitalCode] = {
    "heart_rate": VitalCode(PROFILE_BASE + "heartrate", "8867-4", "Heart rate", "/min"),
    "respiratory_rate": VitalCode(PROFILE_BASE + "resprate", "9279-1", "Respiratory rate", "/min"),
    "spo2": VitalCode(PROFILE_BASE + "oxygensat", "2708-6", "Oxygen saturation in Arterial blood",
                      "%", ("59408-5",)),
    "body_temperature": VitalCode(PROFILE_BASE + "bodytemp", "8310-5", "Body temperature", "Cel"),
    "mean_bp": VitalCode(VITALSIGNS_PROFILE, "8478-0", "Mean blood pressure", "mm[Hg]"),
}
# The blood pressure profile: a panel with systolic and diastolic components.
BP_PANEL = VitalCode(PROFILE_BASE + "bp", "85354-9", "Blood pressure panel with all children "
                     "optional", "mm[Hg]")
BP_COMPONENTS: dict[str, tuple[str, str]] = {
    "systolic_bp": ("8480-6", "Systolic blood pressure"),
    "diastolic_bp": ("8462-4", "Diastolic blood pressure"),
}
# NEWS2 total score. LOINC has no NEWS2 code; the UK's SNOMED CT edition has
# "Royal College of Physicians National Early Warning Score 2 (NEWS2) total
# score" (observable entity), which is what NHS systems record.
NEWS2_CODE = (SNOMED, "1104051000000101",
              "Royal College of Physicians National Early Warning Score 2 (NEWS2) total score")
