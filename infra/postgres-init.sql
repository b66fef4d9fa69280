-- Two databases on one PostgreSQL: Prefect's own, and Lepton's registry.
CREATE DATABASE prefect;
CREATE DATABASE lepton;
