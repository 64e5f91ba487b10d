"""evpark simulator: chargers of both OCPP versions, occupancy sensors, vehicles and
scenarios. It talks to the edge and central only over the network, like hardware does."""
