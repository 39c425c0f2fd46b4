"""A loopback stand-in for the Anthropic Messages API: answers every POST with one streamed text
reply and appends each request body to the file named by argv[2] (one JSON per line).
Usage: python3 standin_anthropic_sse.py PORT REQUESTS.jsonl"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('content-length', 0)); body = self.rfile.read(n)
        open(sys.argv[2], 'ab').write(body + b'\n')
        self.send_response(200); self.send_header('content-type', 'text/event-stream'); self.end_headers()
        def ev(t, d): self.wfile.write(f"event: {t}\ndata: {json.dumps(d)}\n\n".encode())
        ev('message_start', {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":None,"usage":{"input_tokens":10,"output_tokens":1}}})
        ev('content_block_start', {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})
        ev('content_block_delta', {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"STANDIN-REPLY"}})
        ev('content_block_stop', {"type":"content_block_stop","index":0})
        ev('message_delta', {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}})
        ev('message_stop', {"type":"message_stop"})
    def log_message(self, *a): pass
HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
