-- wrk script: POST /api/fetch_recommended_variant for the test id in env SCOUT_TEST_ID.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"cb_model_id": "' .. os.getenv("SCOUT_TEST_ID") .. '"}'
