-- OMOP CDM v5.4, the five tables the research export writes, for PostgreSQL.
-- Columns, order, types and NOT NULLs as in the OHDSI CDM v5.4 DDL
-- (OMOPCDM_postgresql_5.4_ddl.sql); primary keys and the person foreign keys
-- as in its constraints files. The vocabulary tables are not created: load
-- them from Athena (or run the official DDL instead of this file) to join
-- concept names.
CREATE TABLE person (
  person_id integer NOT NULL,
  gender_concept_id integer NOT NULL,
  year_of_birth integer NOT NULL,
  month_of_birth integer NULL,
  day_of_birth integer NULL,
  birth_datetime TIMESTAMP NULL,
  race_concept_id integer NOT NULL,
  ethnicity_concept_id integer NOT NULL,
  location_id integer NULL,
  provider_id integer NULL,
  care_site_id integer NULL,
  person_source_value varchar(50) NULL,
  gender_source_value varchar(50) NULL,
  gender_source_concept_id integer NULL,
  race_source_value varchar(50) NULL,
  race_source_concept_id integer NULL,
  ethnicity_source_value varchar(50) NULL,
  ethnicity_source_concept_id integer NULL
);
CREATE TABLE observation_period (
  observation_period_id integer NOT NULL,
  person_id integer NOT NULL,
  observation_period_start_date date NOT NULL,
  observation_period_end_date date NOT NULL,
  period_type_concept_id integer NOT NULL
);
CREATE TABLE measurement (
  measurement_id integer NOT NULL,
  person_id integer NOT NULL,
  measurement_concept_id integer NOT NULL,
  measurement_date date NOT NULL,
  measurement_datetime TIMESTAMP NULL,
  measurement_time varchar(10) NULL,
  measurement_type_concept_id integer NOT NULL,
  operator_concept_id integer NULL,
  value_as_number NUMERIC NULL,
  value_as_concept_id integer NULL,
  unit_concept_id integer NULL,
  range_low NUMERIC NULL,
  range_high NUMERIC NULL,
  provider_id integer NULL,
  visit_occurrence_id integer NULL,
  visit_detail_id integer NULL,
  measurement_source_value varchar(50) NULL,
  measurement_source_concept_id integer NULL,
  unit_source_value varchar(50) NULL,
  unit_source_concept_id integer NULL,
  value_source_value varchar(50) NULL,
  measurement_event_id bigint NULL,
  meas_event_field_concept_id integer NULL
);
CREATE TABLE observation (
  observation_id integer NOT NULL,
  person_id integer NOT NULL,
  observation_concept_id integer NOT NULL,
  observation_date date NOT NULL,
  observation_datetime TIMESTAMP NULL,
  observation_type_concept_id integer NOT NULL,
  value_as_number NUMERIC NULL,
  value_as_string varchar(60) NULL,
  value_as_concept_id integer NULL,
  qualifier_concept_id integer NULL,
  unit_concept_id integer NULL,
  provider_id integer NULL,
  visit_occurrence_id integer NULL,
  visit_detail_id integer NULL,
  observation_source_value varchar(50) NULL,
  observation_source_concept_id integer NULL,
  unit_source_value varchar(50) NULL,
  qualifier_source_value varchar(50) NULL,
  value_source_value varchar(50) NULL,
  observation_event_id bigint NULL,
  obs_event_field_concept_id integer NULL
);
CREATE TABLE device_exposure (
  device_exposure_id integer NOT NULL,
  person_id integer NOT NULL,
  device_concept_id integer NOT NULL,
  device_exposure_start_date date NOT NULL,
  device_exposure_start_datetime TIMESTAMP NULL,
  device_exposure_end_date date NULL,
  device_exposure_end_datetime TIMESTAMP NULL,
  device_type_concept_id integer NOT NULL,
  unique_device_id varchar(255) NULL,
  production_id varchar(255) NULL,
  quantity integer NULL,
  provider_id integer NULL,
  visit_occurrence_id integer NULL,
  visit_detail_id integer NULL,
  device_source_value varchar(50) NULL,
  device_source_concept_id integer NULL,
  unit_concept_id integer NULL,
  unit_source_value varchar(50) NULL,
  unit_source_concept_id integer NULL
);
ALTER TABLE person ADD CONSTRAINT xpk_person PRIMARY KEY (person_id);
ALTER TABLE observation_period ADD CONSTRAINT xpk_observation_period PRIMARY KEY (observation_period_id);
ALTER TABLE measurement ADD CONSTRAINT xpk_measurement PRIMARY KEY (measurement_id);
ALTER TABLE observation ADD CONSTRAINT xpk_observation PRIMARY KEY (observation_id);
ALTER TABLE device_exposure ADD CONSTRAINT xpk_device_exposure PRIMARY KEY (device_exposure_id);
ALTER TABLE observation_period ADD CONSTRAINT fpk_observation_period_person_id FOREIGN KEY (person_id) REFERENCES person (person_id);
ALTER TABLE measurement ADD CONSTRAINT fpk_measurement_person_id FOREIGN KEY (person_id) REFERENCES person (person_id);
ALTER TABLE observation ADD CONSTRAINT fpk_observation_person_id FOREIGN KEY (person_id) REFERENCES person (person_id);
ALTER TABLE device_exposure ADD CONSTRAINT fpk_device_exposure_person_id FOREIGN KEY (person_id) REFERENCES person (person_id);
