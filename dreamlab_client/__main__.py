from dreamlab_client.cli import main

main()
