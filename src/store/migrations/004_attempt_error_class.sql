-- Each attempt that got no HTTP answer records why, as a class: dns, connect,
-- tls, timeout, protocol, reset or blocked (CONTRACT §6). NULL when an answer
-- came, and for attempts recorded before this version.
ALTER TABLE attempts ADD COLUMN error_class TEXT;
