"""orthanc"""
