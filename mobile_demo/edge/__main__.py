from mobile_demo.edge.app import main

raise SystemExit(main())
