-- The admin token's own principal no longer holds the user name `admin`, so the first person
-- to set up a hub may take that name. Older hubs made it as user `admin` (id `admin`, no
-- password); it becomes `admin.token`, unless someone already holds that name.
UPDATE users SET name = 'admin.token'
WHERE id = 'admin' AND name = 'admin' AND password_hash IS NULL
  AND NOT EXISTS (SELECT 1 FROM users WHERE name = 'admin.token');
