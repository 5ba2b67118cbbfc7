// A fluxhook receiver in C#, base class library only (HttpListener and
// System.Security.Cryptography); builds with .NET or with Mono.
//
//   mcs -out:receiver.exe Receiver.cs                     (Mono)
//   WEBHOOK_SECRET=whsec_... mono receiver.exe 9000
//
// With .NET, put the file in a console project (dotnet new console) and
// `dotnet run -- 9000`. It listens on 127.0.0.1:PORT (HttpListener needs a
// port number: 0 is not allowed) and prints "listening on 127.0.0.1:N". For
// each POST it checks both signatures fluxhook sends, X-Workflux-Signature and
// the Standard Webhooks webhook-signature, prints one line
//
//   delivery event=evt_... attempt=1 verified
//   delivery event=evt_... attempt=2 not verified: webhook-timestamp: ...
//
// and answers 200 when both verify, 401 when not. WEBHOOK_SECRET may hold
// several secrets separated by spaces (while you rotate: the new one and the
// old one); each signature must then verify with one of them.
// In ASP.NET Core, read Request.Body into a byte array before anything parses
// it.
using System;
using System.Collections.Specialized;
using System.IO;
using System.Net;
using System.Security.Cryptography;
using System.Text;

public static class Receiver
{
    // How far webhook-timestamp may be from now.
    const long ToleranceSeconds = 5 * 60;

    // Constant-time comparison of two ASCII strings.
    static bool SafeEquals(string a, string b)
    {
        if (a.Length != b.Length)
            return false;
        int diff = 0;
        for (int i = 0; i < a.Length; i++)
            diff |= a[i] ^ b[i];
        return diff == 0;
    }

    static byte[] HmacSha256(byte[] key, byte[] data)
    {
        using (var mac = new HMACSHA256(key))
            return mac.ComputeHash(data);
    }

    // X-Workflux-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed
    // with the whole secret string ("whsec_" included). Returns null when it
    // matches, else what is wrong.
    public static string VerifyWorkflux(string secret, byte[] body, string signature)
    {
        if (string.IsNullOrEmpty(signature))
            return "X-Workflux-Signature: missing";
        byte[] mac = HmacSha256(Encoding.UTF8.GetBytes(secret), body);
        string expected = BitConverter.ToString(mac).Replace("-", "").ToLowerInvariant();
        if (!SafeEquals(expected, signature.Trim().ToLowerInvariant()))
            return "X-Workflux-Signature: does not match";
        return null;
    }

    // webhook-signature (Standard Webhooks): "v1," + base64 HMAC-SHA256 of
    // "webhook-id.webhook-timestamp.body", keyed with the base64-decoded part
    // of the secret after "whsec_". Several space-separated signatures arrive
    // while a secret rotation runs: any one matching is enough. Returns null
    // when valid, else what is wrong.
    public static string VerifyStandard(string secret, string id, string timestamp,
                                        string signatures, byte[] body, long nowSeconds)
    {
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(timestamp) ||
            string.IsNullOrEmpty(signatures))
            return "webhook-signature: missing webhook-id, webhook-timestamp or webhook-signature";
        long sent;
        if (!long.TryParse(timestamp, System.Globalization.NumberStyles.None,
                           System.Globalization.CultureInfo.InvariantCulture, out sent))
            return "webhook-timestamp: not a number";
        if (Math.Abs(nowSeconds - sent) > ToleranceSeconds)
            return "webhook-timestamp: more than " + ToleranceSeconds + " s from now";
        byte[] key = Convert.FromBase64String(secret.Substring("whsec_".Length));
        byte[] prefix = Encoding.UTF8.GetBytes(id + "." + timestamp + ".");
        byte[] signed = new byte[prefix.Length + body.Length];
        Buffer.BlockCopy(prefix, 0, signed, 0, prefix.Length);
        Buffer.BlockCopy(body, 0, signed, prefix.Length, body.Length);
        string expected = Convert.ToBase64String(HmacSha256(key, signed));
        foreach (string entry in signatures.Split(' '))
        {
            string[] parts = entry.Split(new[] { ',' }, 2);
            if (parts.Length == 2 && parts[0] == "v1" && SafeEquals(expected, parts[1]))
                return null;
        }
        return "webhook-signature: does not match";
    }

    // Both checks, each passing with any one of secrets. Returns null or what
    // is wrong (as found with the first secret).
    public static string VerifyDelivery(string[] secrets, NameValueCollection h, byte[] body)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var checks = new Func<string, string>[] {
            s => VerifyWorkflux(s, body, h["X-Workflux-Signature"]),
            s => VerifyStandard(s, h["webhook-id"], h["webhook-timestamp"],
                                h["webhook-signature"], body, now),
        };
        foreach (var check in checks)
        {
            string first = null;
            bool passed = false;
            foreach (string s in secrets)
            {
                string problem = check(s);
                if (problem == null)
                {
                    passed = true;
                    break;
                }
                if (first == null)
                    first = problem;
            }
            if (!passed)
                return first;
        }
        return null;
    }

    static void Answer(HttpListenerResponse res, int status, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        res.StatusCode = status;
        res.ContentType = "text/plain";
        res.ContentLength64 = bytes.Length;
        res.OutputStream.Write(bytes, 0, bytes.Length);
        res.Close();
    }

    static void Handle(HttpListenerContext ctx, string[] secrets)
    {
        var req = ctx.Request;
        if (req.HttpMethod != "POST")
        {
            Answer(ctx.Response, 405, "POST only\n");
            return;
        }
        byte[] body;
        using (var buf = new MemoryStream())
        {
            req.InputStream.CopyTo(buf);
            body = buf.ToArray();
        }
        var h = req.Headers; // names are case-insensitive
        string where = "event=" + (h["X-Workflux-Event-Id"] ?? "-") +
                       " attempt=" + (h["X-Workflux-Attempt"] ?? "-");
        string problem;
        try
        {
            problem = VerifyDelivery(secrets, h, body);
        }
        catch (FormatException e)
        {
            problem = "cannot verify: " + e.Message;
        }
        if (problem != null)
        {
            Console.WriteLine("delivery " + where + " not verified: " + problem);
            Answer(ctx.Response, 401, "invalid signature\n");
            return;
        }
        Console.WriteLine("delivery " + where + " verified");
        // Parse the JSON body here, or queue it and answer at once.
        Answer(ctx.Response, 200, "ok\n");
    }

    public static int Main(string[] args)
    {
        string[] secrets = (Environment.GetEnvironmentVariable("WEBHOOK_SECRET") ?? "")
            .Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
        bool valid = secrets.Length > 0;
        foreach (string s in secrets)
            valid = valid && s.StartsWith("whsec_", StringComparison.Ordinal);
        int port;
        if (args.Length != 1 || !valid || !int.TryParse(args[0], out port) || port <= 0)
        {
            Console.Error.WriteLine("usage: WEBHOOK_SECRET=whsec_... mono receiver.exe PORT");
            return 2;
        }
        var listener = new HttpListener();
        listener.Prefixes.Add("http://127.0.0.1:" + port + "/");
        listener.Start();
        Console.WriteLine("listening on 127.0.0.1:" + port);
        for (;;)
            Handle(listener.GetContext(), secrets);
    }
}
