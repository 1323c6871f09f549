from cloud_api.cli import main

main()
