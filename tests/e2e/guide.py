"""The receiver-side check of the WorkFlux webhooks guide
(spec/workflux-webhooks-guide.txt, "Webhook Signature Verification"), verbatim
but for the indentation the guide's text lost, so end-to-end receivers verify
exactly as the guide tells receivers to. `payload` is the raw body as str."""
import hmac
import hashlib
def verify_webhook_signature(payload, signature, secret):
    expected_signature = hmac.new(
        secret.encode(),
        payload.encode(),
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected_signature, signature)
