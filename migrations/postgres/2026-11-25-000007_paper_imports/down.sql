DROP TABLE paper_imports;
