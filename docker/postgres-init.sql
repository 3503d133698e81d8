-- First start of the postgres container: the staff inbox's database next to Rasa's (POSTGRES_DB).
CREATE DATABASE inbox;
