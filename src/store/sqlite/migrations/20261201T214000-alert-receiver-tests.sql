-- Each alert receiver's latest test send (the "Test" button): when, whether it got a 2xx, the
-- HTTP status and the error, so the result stays visible after the page is left or the hub restarts.
ALTER TABLE alert_receivers ADD COLUMN last_test_at INTEGER;
ALTER TABLE alert_receivers ADD COLUMN last_test_ok INTEGER;
ALTER TABLE alert_receivers ADD COLUMN last_test_status INTEGER;
ALTER TABLE alert_receivers ADD COLUMN last_test_error TEXT;
