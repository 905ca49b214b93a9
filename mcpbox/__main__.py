from mcpbox.cli import main

raise SystemExit(main())
