-- wrk script: POST /api/update_model/{id} with one reward naming its variant, for the test id in
-- env SCOUT_TEST_ID (the path given to wrk is replaced).
wrk.method = "POST"
wrk.path = "/api/update_model/" .. os.getenv("SCOUT_TEST_ID")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"updates": [{"variant_id": 1, "reward": 1}]}'
