from iaforall.cli.main import main

raise SystemExit(main())
