-- schema.sql - the database every peer creates when its --db file has none: triad's schema
-- version 1 (shared/db_schema.c), statement for statement, so that sqlite_master holds the
-- same text and a file made by triad and one made by a peer are interchangeable.
--
-- A peer runs this inside BEGIN IMMEDIATE ... COMMIT after it has set journal_mode=WAL, found
-- PRAGMA user_version = 0 and passed PRAGMA quick_check; the last statement marks the file
-- as version 1. The World seed is drawn by sqlite's random() here rather than by each
-- language's generator: the values only have to be uniform in 1..10000.
CREATE TABLE World (id INTEGER PRIMARY KEY, randomNumber INTEGER NOT NULL);
CREATE TABLE Fortune (id INTEGER PRIMARY KEY, message TEXT NOT NULL);
CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, qty INTEGER NOT NULL CHECK (qty >= 0));
WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < 10000)
INSERT INTO World (id, randomNumber) SELECT id, abs(random() % 10000) + 1 FROM n;
-- TechEmpower's 12 fortunes, verbatim (an em dash in rows 6 and 8, Japanese in row 12).
INSERT INTO Fortune (id, message) VALUES
  (1, 'fortune: No such file or directory'),
  (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
  (3, 'After enough decimal places, nobody gives a damn.'),
  (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
  (5, 'A computer program does what you tell it to do, not what you want it to do.'),
  (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
  (7, 'Any program that runs right is obsolete.'),
  (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
  (9, 'Feature: A bug with seniority.'),
  (10, 'Computers make very fast, very accurate mistakes.'),
  (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
  (12, 'フレームワークのベンチマーク');
PRAGMA user_version = 1;
