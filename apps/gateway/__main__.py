from apps.gateway.app import main

raise SystemExit(main())
