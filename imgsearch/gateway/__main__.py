from imgsearch.gateway.app import main

raise SystemExit(main())
