//! The production store: PostgreSQL + PostGIS through sqlx.
