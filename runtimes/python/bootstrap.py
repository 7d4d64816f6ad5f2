"""Entry point of nimbus's Python runtime client (see nimbus_lambda_runtime.py).

    /usr/bin/python3 -u /var/runtime/python/bootstrap.py [module.function]

The client is a module so that its precompiled bytecode is used: compiling
its source took tens of milliseconds of every cold start.
"""

import nimbus_lambda_runtime

nimbus_lambda_runtime.main()
