"""Put on the ``PYTHONPATH`` of the example's ``runserver`` by ``test_django_served.py``.

Django's development server writes an answer's headers and its body in two ``send`` calls.
On a kept-alive connection, Nagle's algorithm holds the body until the headers are
acknowledged, and the client delays that acknowledgement by ~40 ms: 1,500 requests took 75 s
instead of 8. The socket option below (``TCP_NODELAY``, which production servers set) sends
each write at once; what the test checks is SCIM, not the development server's TCP.
"""

import socketserver

socketserver.StreamRequestHandler.disable_nagle_algorithm = True
