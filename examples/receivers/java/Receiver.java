// A fluxhook receiver in Java 11 or later, JDK only (javax.crypto and the
// JDK's built-in com.sun.net.httpserver).
//
//   javac -d out Receiver.java
//   WEBHOOK_SECRET=whsec_... java -cp out Receiver 9000
//
// It listens on 127.0.0.1:PORT (0 picks a free port; the first line printed,
// "listening on 127.0.0.1:N", says which). For each POST it checks both
// signatures fluxhook sends, X-Workflux-Signature and the Standard Webhooks
// webhook-signature, prints one line
//
//   delivery event=evt_... attempt=1 verified
//   delivery event=evt_... attempt=2 not verified: webhook-timestamp: ...
//
// and answers 200 when both verify, 401 when not. WEBHOOK_SECRET may hold
// several secrets separated by spaces (while you rotate: the new one and the
// old one); each signature must then verify with one of them.
// In Spring, take the body as byte[] (@RequestBody byte[] body) so the bytes
// are the ones that were signed.
import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.Locale;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class Receiver {
    /** How far webhook-timestamp may be from now. */
    static final long TOLERANCE_SECONDS = 5 * 60;

    private Receiver() {
    }

    static byte[] hmacSha256(byte[] key, byte[]... parts) throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        for (byte[] p : parts) {
            mac.update(p);
        }
        return mac.doFinal();
    }

    /** Constant-time comparison of two ASCII strings. */
    static boolean safeEquals(String a, String b) {
        return MessageDigest.isEqual(a.getBytes(StandardCharsets.US_ASCII),
                                     b.getBytes(StandardCharsets.US_ASCII));
    }

    /**
     * X-Workflux-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed
     * with the whole secret string ("whsec_" included). Returns null when it
     * matches, else what is wrong.
     */
    static String verifyWorkflux(String secret, byte[] body, String signature)
            throws GeneralSecurityException {
        if (signature == null || signature.isEmpty()) {
            return "X-Workflux-Signature: missing";
        }
        byte[] mac = hmacSha256(secret.getBytes(StandardCharsets.UTF_8), body);
        StringBuilder expected = new StringBuilder();
        for (byte b : mac) {
            expected.append(String.format("%02x", b));
        }
        if (!safeEquals(expected.toString(), signature.trim().toLowerCase(Locale.ROOT))) {
            return "X-Workflux-Signature: does not match";
        }
        return null;
    }

    /**
     * webhook-signature (Standard Webhooks): "v1," + base64 HMAC-SHA256 of
     * "webhook-id.webhook-timestamp.body", keyed with the base64-decoded part
     * of the secret after "whsec_". Several space-separated signatures arrive
     * while a secret rotation runs: any one matching is enough. Returns null
     * when valid, else what is wrong.
     */
    static String verifyStandard(String secret, String id, String timestamp, String signatures,
                                 byte[] body, long nowSeconds) throws GeneralSecurityException {
        if (id == null || id.isEmpty() || timestamp == null || timestamp.isEmpty()
            || signatures == null || signatures.isEmpty()) {
            return "webhook-signature: missing webhook-id, webhook-timestamp or webhook-signature";
        }
        if (!timestamp.matches("[0-9]{1,18}")) {
            return "webhook-timestamp: not a number";
        }
        if (Math.abs(nowSeconds - Long.parseLong(timestamp)) > TOLERANCE_SECONDS) {
            return "webhook-timestamp: more than " + TOLERANCE_SECONDS + " s from now";
        }
        byte[] key = Base64.getDecoder().decode(secret.substring("whsec_".length()));
        String expected = Base64.getEncoder().encodeToString(hmacSha256(
            key, (id + "." + timestamp + ".").getBytes(StandardCharsets.UTF_8), body));
        for (String entry : signatures.split(" ")) {
            String[] parts = entry.split(",", 2);
            if (parts.length == 2 && parts[0].equals("v1") && safeEquals(expected, parts[1])) {
                return null;
            }
        }
        return "webhook-signature: does not match";
    }

    interface Check {
        String run(String secret) throws GeneralSecurityException;
    }

    /**
     * Both checks, each passing with any one of secrets. Returns null or what
     * is wrong (as found with the first secret).
     */
    static String verifyDelivery(String[] secrets, Headers h, byte[] body)
            throws GeneralSecurityException {
        long now = System.currentTimeMillis() / 1000;
        Check[] checks = {
            s -> verifyWorkflux(s, body, h.getFirst("X-Workflux-Signature")),
            s -> verifyStandard(s, h.getFirst("webhook-id"), h.getFirst("webhook-timestamp"),
                                h.getFirst("webhook-signature"), body, now),
        };
        for (Check check : checks) {
            String first = null;
            boolean passed = false;
            for (String s : secrets) {
                String problem = check.run(s);
                if (problem == null) {
                    passed = true;
                    break;
                }
                if (first == null) {
                    first = problem;
                }
            }
            if (!passed) {
                return first;
            }
        }
        return null;
    }

    static void answer(HttpExchange ex, int status, String text) throws IOException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "text/plain");
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }

    static String orDash(String s) {
        return s == null ? "-" : s;
    }

    static void handle(HttpExchange ex, String[] secrets) throws IOException {
        if (!ex.getRequestMethod().equals("POST")) {
            answer(ex, 405, "POST only\n");
            return;
        }
        byte[] body;
        try (InputStream in = ex.getRequestBody()) {
            body = in.readAllBytes();
        }
        Headers h = ex.getRequestHeaders(); // names are case-insensitive
        String where = "event=" + orDash(h.getFirst("X-Workflux-Event-Id"))
            + " attempt=" + orDash(h.getFirst("X-Workflux-Attempt"));
        String problem;
        try {
            problem = verifyDelivery(secrets, h, body);
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            problem = "cannot verify: " + e.getMessage();
        }
        if (problem != null) {
            System.out.println("delivery " + where + " not verified: " + problem);
            answer(ex, 401, "invalid signature\n");
            return;
        }
        System.out.println("delivery " + where + " verified");
        // Parse the JSON body here, or queue it and answer at once.
        answer(ex, 200, "ok\n");
    }

    public static void main(String[] args) throws IOException {
        String env = System.getenv("WEBHOOK_SECRET");
        String[] secrets = env == null ? new String[0] : env.trim().split(" +");
        boolean valid = secrets.length > 0;
        for (String s : secrets) {
            valid = valid && s.startsWith("whsec_");
        }
        if (args.length != 1 || !valid) {
            System.err.println("usage: WEBHOOK_SECRET=whsec_... java Receiver PORT");
            System.exit(2);
        }
        HttpServer server = HttpServer.create(
            new InetSocketAddress(InetAddress.getLoopbackAddress(), Integer.parseInt(args[0])), 64);
        server.createContext("/", ex -> {
            try {
                handle(ex, secrets);
            } finally {
                ex.close();
            }
        });
        server.start();
        System.out.println("listening on 127.0.0.1:" + server.getAddress().getPort());
    }
}
