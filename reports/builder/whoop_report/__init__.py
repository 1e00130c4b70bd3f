"""The WHOOP report's builder: Node, the locked npm packages, the `whoop` source and `evidence build`."""
