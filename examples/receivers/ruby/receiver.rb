# A fluxhook receiver in Ruby: openssl from the standard library, WEBrick as
# the server (Debian's ruby brings it; elsewhere `gem install webrick`).
#
#   WEBHOOK_SECRET=whsec_... ruby receiver.rb 9000
#
# It listens on 127.0.0.1:PORT (0 picks a free port; the first line printed,
# "listening on 127.0.0.1:N", says which). For each POST it checks both
# signatures fluxhook sends, X-Workflux-Signature and the Standard Webhooks
# webhook-signature, prints one line
#
#   delivery event=evt_... attempt=1 verified
#   delivery event=evt_... attempt=2 not verified: webhook-timestamp: ...
#
# and answers 200 when both verify, 401 when not. WEBHOOK_SECRET may hold
# several secrets separated by spaces (while you rotate: the new one and the
# old one); each signature must then verify with one of them. In Rails or
# Sinatra, verify request.raw_post / request.body.read, the bytes as they
# arrived.
require 'base64'
require 'openssl'
require 'webrick'

TOLERANCE_SECONDS = 5 * 60 # how far webhook-timestamp may be from now

# X-Workflux-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed with
# the whole secret string ("whsec_" included). Returns nil when it matches,
# else what is wrong.
def verify_workflux(secret, body, signature)
  return 'X-Workflux-Signature: missing' if signature.nil? || signature.empty?

  expected = OpenSSL::HMAC.hexdigest('SHA256', secret, body)
  return nil if OpenSSL.secure_compare(expected, signature.strip.downcase)

  'X-Workflux-Signature: does not match'
end

# webhook-signature (Standard Webhooks): "v1," + base64 HMAC-SHA256 of
# "webhook-id.webhook-timestamp.body", keyed with the base64-decoded part of
# the secret after "whsec_". Several space-separated signatures arrive while a
# secret rotation runs: any one matching is enough. Returns nil when valid,
# else what is wrong.
def verify_standard(secret, id, timestamp, signatures, body, now = Time.now.to_i)
  if [id, timestamp, signatures].any? { |v| v.nil? || v.empty? }
    return 'webhook-signature: missing webhook-id, webhook-timestamp or webhook-signature'
  end
  return 'webhook-timestamp: not a number' unless timestamp.match?(/\A[0-9]+\z/)
  if (now - timestamp.to_i).abs > TOLERANCE_SECONDS
    return "webhook-timestamp: more than #{TOLERANCE_SECONDS} s from now"
  end

  key = Base64.strict_decode64(secret.delete_prefix('whsec_'))
  expected = Base64.strict_encode64(OpenSSL::HMAC.digest('SHA256', key, "#{id}.#{timestamp}.#{body}"))
  signatures.split(' ').each do |entry|
    version, sig = entry.split(',', 2)
    return nil if version == 'v1' && sig && OpenSSL.secure_compare(expected, sig)
  end
  'webhook-signature: does not match'
end

# Both checks, each passing with any one of secrets. Returns nil or what is
# wrong (as found with the first secret).
def verify_delivery(secrets, req, body)
  checks = [
    ->(s) { verify_workflux(s, body, req['X-Workflux-Signature']) },
    ->(s) { verify_standard(s, req['webhook-id'], req['webhook-timestamp'], req['webhook-signature'], body) }
  ]
  checks.each do |check|
    problems = secrets.map(&check)
    return problems.first unless problems.include?(nil)
  end
  nil
end

secrets = ENV.fetch('WEBHOOK_SECRET', '').split
unless ARGV.length == 1 && !secrets.empty? && secrets.all? { |s| s.start_with?('whsec_') }
  warn 'usage: WEBHOOK_SECRET=whsec_... ruby receiver.rb PORT'
  exit 2
end
$stdout.sync = true

server = WEBrick::HTTPServer.new(BindAddress: '127.0.0.1', Port: Integer(ARGV[0]),
                                 Logger: WEBrick::Log.new(File::NULL), AccessLog: [])
server.mount_proc '/' do |req, res|
  body = req.body || ''
  where = "event=#{req['X-Workflux-Event-Id'] || '-'} attempt=#{req['X-Workflux-Attempt'] || '-'}"
  problem = verify_delivery(secrets, req, body)
  res['Content-Type'] = 'text/plain'
  if problem
    puts "delivery #{where} not verified: #{problem}"
    res.status = 401
    res.body = "invalid signature\n"
  else
    puts "delivery #{where} verified"
    # Handle JSON.parse(body) here, or queue it and answer at once.
    res.status = 200
    res.body = "ok\n"
  end
end
puts "listening on 127.0.0.1:#{server.listeners[0].addr[1]}"
trap('TERM') { server.shutdown }
server.start
