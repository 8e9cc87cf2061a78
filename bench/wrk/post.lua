-- wrk script for row (c): the same POST our http backend sends for one chat
-- message with the default callback module (form-encoded body).
wrk.method = "POST"
wrk.body = "author=alice&server=localhost&receiver=bob&message=Hello+from+the+benchmark"
wrk.headers["content-type"] = "application/x-www-form-urlencoded"
