DROP TABLE sample_members;
DROP TABLE sample_units;
DROP TABLE samples;
