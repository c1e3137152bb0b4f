-- The API's POST /upload runs the upload function's own code (ingress.upload.Uploader):
-- it registers the image it stored, as the upload function does (migration 0011 gave
-- the API only UPDATE on images, so every upload through the API failed).
GRANT INSERT ON images TO triptych_api;
